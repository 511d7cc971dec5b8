"""Fixtures of the unit tier: in-memory stores and synthetic data, never a service (fakes: tests/fakes.py)."""

# A fixture is registered by its name in a conftest (``x as x``: imported to be registered, not used here);
# pytest allows ``pytest_plugins`` only in the top conftest, where it would load every tier's fixtures.
from tests.fixtures.dataset import dataset_store as dataset_store
from tests.fixtures.dataset import tiny_month as tiny_month
from tests.fixtures.evaluation import eval_store as eval_store
from tests.fixtures.evaluation import fake_tracker as fake_tracker
from tests.fixtures.fieldsim import fieldsim_fleet as fieldsim_fleet
from tests.fixtures.fleet import memory_store as memory_store
from tests.fixtures.gate_world import gate_world as gate_world
