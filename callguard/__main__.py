from callguard.cli import main

raise SystemExit(main())
