"""Cross-cutting tricks as Lightning callbacks; each works with any module that exposes what it needs."""

from callbacks.calibration import PostHocCalibration
from callbacks.guards import NonFiniteLossGuard
from callbacks.learning_rate import LearningRateMonitorIfLogged, StopBelowLearningRate
from callbacks.mixing import KImageMixing
from callbacks.predictions import PredictionCSVWriter
from callbacks.rng_state import RNGStateCheckpoint
from callbacks.schedules import ScheduleCallback
from callbacks.speed import SPEED_SWITCHES, ChannelsLast, CompileNetworks
from callbacks.visualization import TensorBoardPictures

__all__ = [
    "SPEED_SWITCHES",
    "ChannelsLast",
    "CompileNetworks",
    "KImageMixing",
    "LearningRateMonitorIfLogged",
    "NonFiniteLossGuard",
    "PostHocCalibration",
    "PredictionCSVWriter",
    "RNGStateCheckpoint",
    "ScheduleCallback",
    "StopBelowLearningRate",
    "TensorBoardPictures",
]
