"""Records and value types shared by every part of vigiamar."""
