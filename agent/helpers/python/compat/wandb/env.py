"""The environment variable names W&B reads (``wandb.env``)."""

import os

DIR = "WANDB_DIR"
MODE = "WANDB_MODE"
SILENT = "WANDB_SILENT"
PROJECT = "WANDB_PROJECT"
ENTITY = "WANDB_ENTITY"
NAME = "WANDB_NAME"
NOTES = "WANDB_NOTES"
TAGS = "WANDB_TAGS"
RUN_ID = "WANDB_RUN_ID"
RUN_GROUP = "WANDB_RUN_GROUP"
JOB_TYPE = "WANDB_JOB_TYPE"
SWEEP_ID = "WANDB_SWEEP_ID"
SWEEP_PARAM_PATH = "WANDB_SWEEP_PARAM_PATH"
API_KEY = "WANDB_API_KEY"
DISABLED = "WANDB_DISABLED"
CONFIG_PATHS = "WANDB_CONFIG_PATHS"


def get_dir(default=None, env=None):
    return (env or os.environ).get(DIR, default)


def get_project(default=None, env=None):
    return (env or os.environ).get(PROJECT, default)


def get_entity(default=None, env=None):
    return (env or os.environ).get(ENTITY, default)


def get_run(default=None, env=None):
    return (env or os.environ).get(RUN_ID, default)


def get_sweep_id(default=None, env=None):
    return (env or os.environ).get(SWEEP_ID, default)
