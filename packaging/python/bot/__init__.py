"""The old Python bot's package name, kept so that existing scripts run unchanged.

``from bot import messangers`` gives ``messangers.send_message(text)``, which now sends
through protowatch; see ``bot/messangers.py`` for the options and environment variables.
"""

from . import messangers

__all__ = ["messangers"]
