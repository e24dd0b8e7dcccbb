"""The MLflow "model from code" of a registered codec (see :func:`dplc.registry.log_codec`).

``mlflow.pyfunc.log_model(python_model=<this file>)`` stores this file instead of a pickled
object, so a logged codec carries no pickle at all (weights in safetensors, the description in
JSON) and MLflow has no CloudPickle serialisation to warn about.
"""

from dplc.registry import serve_codec_model

serve_codec_model()
