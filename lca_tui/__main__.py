from lca_tui.cli import main

raise SystemExit(main())
