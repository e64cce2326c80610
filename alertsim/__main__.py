import sys

from alertsim.cli.main import main

sys.exit(main())
