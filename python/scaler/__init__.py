"""scaler: the Python side of OpenGRIS Scaler's engine rebuilt in Go.

``from scaler import Client, SchedulerClusterCombo`` works as with Scaler 1.12.5.
"""

__version__ = "0.1.0"

from scaler.client.client import Client  # noqa: E402
from scaler.client.future import ScalerFuture  # noqa: E402
from scaler.client.serializer.mixins import Serializer  # noqa: E402
from scaler.cluster.cluster import Cluster  # noqa: E402
from scaler.cluster.combo import SchedulerClusterCombo  # noqa: E402
from scaler.cluster.scheduler import Scheduler  # noqa: E402

__all__ = ["Client", "ScalerFuture", "Serializer", "Cluster", "SchedulerClusterCombo", "Scheduler", "__version__"]
