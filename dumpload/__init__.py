"""dumpload: bring a target MySQL/MariaDB database in line with a source one, safely."""

__version__ = "0.1.0"

import logging as _logging

# A library stays silent until the CLI routes its records: without a handler, Python's
# last-resort handler would print errors (and their tracebacks) on stderr.
_logging.getLogger("dumpload").addHandler(_logging.NullHandler())
