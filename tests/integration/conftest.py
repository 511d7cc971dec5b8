"""Fixtures of the integration tier: the real services started as local processes, and what runs on them."""

# A fixture is registered by its name in a conftest (``x as x``: imported to be registered, not used here);
# pytest allows ``pytest_plugins`` only in the top conftest, where it would load every tier's fixtures.
from tests.fixtures.browser import screenshots as screenshots
from tests.fixtures.dataset import built as built
from tests.fixtures.evaluation import eval_store as eval_store
from tests.fixtures.evaluation import fake_tracker as fake_tracker
from tests.fixtures.fieldsim import fieldsim_fleet as fieldsim_fleet
from tests.fixtures.fieldsim import fieldsim_sources as fieldsim_sources
from tests.fixtures.gate_world import gate_world as gate_world
from tests.fixtures.library_envs import library_env as library_env
from tests.fixtures.library_envs import package_index as package_index
from tests.fixtures.runner_context import runner_context as runner_context
from tests.fixtures.services import mlflow_server as mlflow_server
from tests.fixtures.services import mlflow_settings as mlflow_settings
from tests.fixtures.services import mlflow_tracking_uri as mlflow_tracking_uri
from tests.fixtures.services import object_store as object_store
from tests.fixtures.services import postgres_dsn as postgres_dsn
from tests.fixtures.services import postgres_server as postgres_server
from tests.fixtures.services import s3_server as s3_server
from tests.fixtures.services import s3_settings as s3_settings
