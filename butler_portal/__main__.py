"""``python -m butler_portal`` and the ``butler-portal`` script: manage.py for an installed portal.

The repository's manage.py sits beside the code and is not in the wheel; an installed portal
(the container image) runs its management commands through this instead.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "butler_portal.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
