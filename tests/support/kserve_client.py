"""Run by tests/test_inference_protocol.py in an environment of its own (uvx --from kserve): the
kserve SDK's REST client against a server; prints what it saw as JSON."""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(url: str, rows: list[list[float]], binary: bool) -> dict[str, object]:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        matrix = np.array(rows, dtype=np.float64)
        tensor = InferInput("input", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=binary)
        request = InferRequest(model_name="iris", infer_inputs=[tensor])
        response = await client.infer(url, request, model_name="iris")
        outputs = {output.name: output.as_numpy() for output in response.outputs}
        labels = [x.decode() if isinstance(x, bytes) else x for x in outputs["label"].tolist()]
        return {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, "iris"),
            "labels": labels,
            "probabilities": outputs["probabilities"].tolist(),
        }
    finally:
        await client.close()


if __name__ == "__main__":
    url, rows, binary = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "binary"
    print(json.dumps(asyncio.run(main(url, rows, binary))))
