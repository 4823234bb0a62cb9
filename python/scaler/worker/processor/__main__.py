import sys

from scaler.worker.processor import main

sys.exit(main())
