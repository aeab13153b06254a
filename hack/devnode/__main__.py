from devnode.cli import main

raise SystemExit(main())
