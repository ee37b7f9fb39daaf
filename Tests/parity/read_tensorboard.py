"""Reads a run folder's TensorBoard log with TensorBoard's own readers and prints it as JSON.

usage: read_tensorboard.py RUN_FOLDER            (EventAccumulator: what TensorBoard shows)
       read_tensorboard.py --file EVENT_FILE     (EventFileLoader: every whole record of one file)

The first form prints {"scalars": {tag: [[step, value], ...]}, "images": {tag: [[step, width,
height, sha256 of the encoded bytes, decoded PNG's [height, width, channels]], ...]}, "text":
{tag: [[step, text], ...]}}. The second prints {"steps": [...], "wall_times": [...]}, one entry
per event the loader yields.
"""
import hashlib
import io
import json
import sys

from PIL import Image
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.util import tensor_util


def accumulate(folder):
    accumulator = event_accumulator.EventAccumulator(
        folder, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {tag: [[e.step, e.value] for e in accumulator.Scalars(tag)] for tag in tags["scalars"]}
    images = {}
    for tag in tags["images"]:
        rows = []
        for e in accumulator.Images(tag):
            decoded = Image.open(io.BytesIO(e.encoded_image_string))
            rows.append([e.step, e.width, e.height, hashlib.sha256(e.encoded_image_string).hexdigest(),
                         [decoded.height, decoded.width, len(decoded.getbands())]])
        images[tag] = rows
    text = {}
    for tag in tags["tensors"]:
        text[tag] = [[e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode()] for e in accumulator.Tensors(tag)]
    return {"scalars": scalars, "images": images, "text": text}


def load_file(path):
    events = list(event_file_loader.EventFileLoader(path).Load())
    return {"steps": [e.step for e in events], "wall_times": [e.wall_time for e in events]}


if __name__ == "__main__":
    if sys.argv[1] == "--file":
        print(json.dumps(load_file(sys.argv[2])))
    else:
        print(json.dumps(accumulate(sys.argv[1])))
