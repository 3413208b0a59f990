"""Records and value types shared by every part of vigiamar."""

from models import compiled as _compiled

_compiled.use("models", __path__)
