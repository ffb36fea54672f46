"""Option pieces that several methods' options models share (network specs, the adversarial loss).

Each method declares its own options model (``options_model``); the pieces here
only keep the common fields written once, with one description each.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from medgan.config.loader import StrictModel


def _spec_has_name(spec: dict[str, Any]) -> dict[str, Any]:
    if "name" not in spec:
        raise ValueError("a network spec needs a `name` key (a medgan.models registry name)")
    return spec


NetworkSpec = Annotated[dict[str, Any], AfterValidator(_spec_has_name)]
"""A network-registry spec: ``{name: unet3d, **constructor arguments}``."""


def default_unet() -> dict[str, Any]:
    """The default translation generator: a 4-level 3D U-Net with batch norm (window-invariant inference)."""
    return {"name": "unet3d", "channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1, "norm": "batch"}


def default_patchgan() -> dict[str, Any]:
    """The default patch discriminator (input channels are set by the method)."""
    return {"name": "patchgan3d", "channels": 16, "num_layers_d": 3}


def generator_field(default_factory: Any = default_unet) -> Any:
    """The ``generator`` field of a method's options."""
    return Field(
        default_factory=default_factory,
        description="Generator spec for medgan.models.build_network: {name: ..., constructor args}.",
    )


def discriminator_field() -> Any:
    """The ``discriminator`` field of a method's options."""
    return Field(
        default_factory=default_patchgan,
        description="Discriminator spec for medgan.models.build_network; input channels are set by the method.",
    )


class AdversarialOptions(StrictModel):
    """The adversarial objective and its weight in the generator loss."""

    adversarial: Literal["lsgan", "hinge", "nonsaturating"] = Field(
        "lsgan", description="Adversarial loss: least squares (default), hinge or non-saturating BCE."
    )
    lambda_adv: float = Field(
        1.0, ge=0.0, description="Weight of the generator's adversarial loss; 0 trains without a discriminator."
    )
    instance_noise: float = Field(
        0.03,
        ge=0.0,
        description="Std (network units) of Gaussian noise added to every image the discriminator sees, real and "
        "generated (instance noise). 0.03 (~60 HU on CT) hides the ~20 HU scanner noise of real CTs, on which a "
        "discriminator otherwise wins outright (measured: D accuracy 1.0 at 2e-5 lr); 0 = off.",
    )
