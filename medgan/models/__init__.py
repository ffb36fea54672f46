"""medgan.models: networks (generators, discriminators, classifiers), built by name from config.

Importing this package registers every bundled network, so
``build_network({"name": "unet3d", ...})`` works after ``import medgan.models``.
"""

from medgan.models.bulk_density import BulkDensity3D
from medgan.models.classifiers import DenseNet3DClassifier
from medgan.models.conditional import ConditionalGenerator3D, ProjectionDiscriminator3D
from medgan.models.discriminators import PatchGAN3DDiscriminator
from medgan.models.generators import UNet2DGenerator, UNet3DGenerator
from medgan.models.registry import (
    InputRequirement,
    build_network,
    check_input_size,
    get_network_class,
    input_requirement,
    known_networks,
    network_arguments,
    register_network,
)
from medgan.models.segmenters import SegResNet3D
from medgan.models.unrolled import UnrolledReconstruction2D, UnrolledReconstruction3D

__all__ = [
    "BulkDensity3D",
    "ConditionalGenerator3D",
    "DenseNet3DClassifier",
    "PatchGAN3DDiscriminator",
    "ProjectionDiscriminator3D",
    "SegResNet3D",
    "InputRequirement",
    "UNet2DGenerator",
    "UNet3DGenerator",
    "UnrolledReconstruction2D",
    "UnrolledReconstruction3D",
    "build_network",
    "check_input_size",
    "get_network_class",
    "input_requirement",
    "known_networks",
    "network_arguments",
    "register_network",
]
