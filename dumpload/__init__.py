"""dumpload: bring a target MySQL/MariaDB database in line with a source one, safely."""

__version__ = "0.1.0"
