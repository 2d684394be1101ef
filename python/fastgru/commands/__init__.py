"""The ``fastgru`` command's subcommands that train models: ``demo`` and ``forecast``."""
