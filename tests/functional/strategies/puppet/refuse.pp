# A resource that fails: puppet apply --detailed-exitcodes exits with 4 or 6.
exec { 'migrate-database':
  command => "/bin/sh -c 'echo schema ${facts['ephyra_version']} refused >&2; exit 1'",
  logoutput => true,
}
