import sys

from densenet_chart.generate import main

sys.exit(main())
