"""What every component shares: the image it runs in (configurable at compile time)."""

from patchrisk.settings import get_settings

COMPONENT_IMAGE = get_settings().component_image
