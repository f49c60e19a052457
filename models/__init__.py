"""The freqlens model zoo (imported as ``freqlens.models``): each family registers its variants with timm."""
from freqlens.models import spartan  # noqa: F401
from freqlens.models import spatial_mamba  # noqa: F401
from freqlens.models import fdam  # noqa: F401
from freqlens.models import spectral_vmamba  # noqa: F401
from freqlens.models import spanetv2  # noqa: F401
