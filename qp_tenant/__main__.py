from qp_tenant.cli import main

raise SystemExit(main())
