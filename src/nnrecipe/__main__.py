from nnrecipe.cli import main

raise SystemExit(main())
