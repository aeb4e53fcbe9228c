"""Shared test helpers: the tiny fixture config, built fresh for each test."""
import copy

import pytest

from stageward_train.config import ModelConfig
from stageward_train.make_fixture import TINY_CONFIG


@pytest.fixture
def tiny_dict():
    return copy.deepcopy(TINY_CONFIG)


@pytest.fixture
def tiny_cfg(tiny_dict):
    return ModelConfig.from_dict(tiny_dict)
