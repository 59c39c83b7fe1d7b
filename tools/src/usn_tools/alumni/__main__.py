from usn_tools.alumni.cli import main

raise SystemExit(main())
