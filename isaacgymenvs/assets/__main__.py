"""``python -m isaacgymenvs.assets``: runs :func:`isaacgymenvs.assets.cli.main`.

Imports: :mod:`isaacgymenvs.assets.cli` only.
"""

import sys

from isaacgymenvs.assets.cli import main

if __name__ == "__main__":
    sys.exit(main())
