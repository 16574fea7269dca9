"""``python -m manymodels`` is the ``manymodels`` command."""

from manymodels.cli import main

raise SystemExit(main())
