# The release file carries the version Ephyra gives as the fact ephyra_version.
file { $facts['release_file']:
  ensure  => file,
  mode    => '0644',
  content => "release ${facts['ephyra_version']}\n",
}
