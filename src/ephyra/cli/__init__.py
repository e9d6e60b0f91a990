"""The ``ephyra`` command line."""

import warnings

# futurist (through taskflow) imports eventlet when it is installed, which warns at import.
warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")
