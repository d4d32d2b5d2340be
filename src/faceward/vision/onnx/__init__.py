"""dlib's face networks converted to ONNX and run on ONNX Runtime (issue #4).

``converted_model_path`` turns the pinned dlib file into a cached ``.onnx``;
``OnnxDescriptor`` runs it and returns what dlib's ``compute_face_descriptor`` would;
``OnnxMmodDetector`` finds the boxes dlib's ``cnn_face_detection_model_v1`` finds.
"""

from faceward.vision.onnx.convert import ModelKind, convert, converted_model_path
from faceward.vision.onnx.dlib_format import DlibFormatError
from faceward.vision.onnx.mmod import Detection
from faceward.vision.onnx.runtime import OnnxDescriptor, OnnxMmodDetector, default_providers

__all__ = [
    "Detection",
    "DlibFormatError",
    "ModelKind",
    "OnnxDescriptor",
    "OnnxMmodDetector",
    "convert",
    "converted_model_path",
    "default_providers",
]
