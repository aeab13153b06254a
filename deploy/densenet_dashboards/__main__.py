import sys

from densenet_dashboards.generate import main

sys.exit(main())
