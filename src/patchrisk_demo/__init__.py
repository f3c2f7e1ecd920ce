"""`make run`: the whole local loop on embedded defaults, one step after another, with a summary."""
