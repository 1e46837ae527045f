"""``python -m udsproxy``: the ``udsproxy`` command (see udsproxy.command)."""

from udsproxy.command import main

if __name__ == "__main__":
    main()
