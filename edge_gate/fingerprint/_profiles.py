"""Per-model profiles of the UART fingerprint module family.

Image size, LED control and optional commands differ between models; the
driver and the emulator read them from here. R30x and AS608 modules cannot
report their image size, so it comes from the profile; R5xx modules report it
in ReadProdInfo, which the driver prefers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

LedKind = Literal["none", "backlight", "aura"]


@dataclass(frozen=True)
class ModuleProfile:
    """Capabilities of one module model.

    Attributes:
        name: profile key, as in ``[fingerprint] profile``.
        width: image width in pixels.
        height: image height in pixels.
        dpi: sensor resolution.
        led: "aura" (AuraLedConfig 0x35), "backlight" (0x50/0x51) or "none".
        has_get_image_ex: GetImageEx (0x28) exists and reports poor images.
        has_product_info: ReadProdInfo (0x3C) reports the image size.
        ready_byte: the module sends 0x55 after power-up and SoftRst.
        startup_s: time after power-up before the first command.
    """

    name: str
    width: int
    height: int
    dpi: int
    led: LedKind
    has_get_image_ex: bool
    has_product_info: bool
    ready_byte: bool
    startup_s: float


PROFILES: Final[dict[str, ModuleProfile]] = {
    "r307": ModuleProfile("r307", 256, 288, 500, "none", False, False, False, 0.5),
    "zfm20": ModuleProfile("zfm20", 256, 288, 500, "none", False, False, False, 0.5),
    "as608": ModuleProfile(
        "as608", 256, 288, 500, "backlight", False, False, False, 0.5
    ),
    "r503": ModuleProfile("r503", 192, 192, 508, "aura", True, True, True, 0.05),
}


def get_profile(name: str) -> ModuleProfile:
    """Return the profile called ``name``.

    Raises:
        ValueError: no such profile.
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(
            f"unknown fingerprint module profile {name!r}; known: {known}"
        ) from None
