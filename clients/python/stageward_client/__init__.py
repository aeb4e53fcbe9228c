"""stageward-client: stream camera frames to a stageward reward server, get progress and shaped rewards.

    from stageward_client import RewardClient, StagewardRewardWrapper, StagewardError
"""
from .client import AsyncRewardClient, RewardClient
from .errors import StagewardError
from .gym import StagewardRewardWrapper

__all__ = ["AsyncRewardClient", "RewardClient", "StagewardError", "StagewardRewardWrapper"]
__version__ = "0.1.0"
