"""GitHub Actions: workflow ``jobs.<id>.container`` and ``services``, ``docker://`` step actions, and action.yml's
``runs.image: docker://REF``."""

from __future__ import annotations

from . import yamlscan
from .uses import FileScan

KIND = "github"
DOCKER = "docker://"
# Most workflows run no container: without one of these words there is nothing to pin, and no need to import yaml.
_WORDS = (b"container", b"image", DOCKER.encode())


def scan_workflow(data: bytes, path: str = "") -> FileScan:
    """Every image a workflow's jobs run (container, services, ``uses: docker://``), in file order."""
    if not any(w in data for w in _WORDS):
        return FileScan(KIND)
    return yamlscan.scan(data, path, KIND, "GitHub Actions workflow", _visit_workflow)


def scan_action(data: bytes, path: str = "") -> FileScan:
    """The image a Docker container action runs (``runs.image: docker://REF``) and its composite steps' images."""
    return yamlscan.scan(data, path, KIND, "GitHub action metadata file", _visit_action)


def _steps(stream: yamlscan.Stream, steps: yamlscan.Node | None, where: str) -> None:
    for i, step in enumerate(yamlscan.sequence_items(steps)):
        uses = yamlscan.get(step, "uses")
        if uses is not None:
            stream.add(uses, f"{where}[{i}].uses", prefix=DOCKER)


def _visit_workflow(stream: yamlscan.Stream) -> None:
    # `on:` is a boolean key in YAML 1.1; keys are compared as written, so it does not matter here.
    for doc in stream.documents:
        for job_id, job in yamlscan.mapping_items(yamlscan.get(doc, "jobs")):
            where = f"jobs.{job_id}"
            container = yamlscan.get(job, "container")
            if container is not None and yamlscan.is_mapping(container):
                image = yamlscan.get(container, "image")
                if image is not None:
                    stream.add(image, f"{where}.container.image")
            elif container is not None:
                stream.add(container, f"{where}.container")
            for service_id, service in yamlscan.mapping_items(yamlscan.get(job, "services")):
                image = yamlscan.get(service, "image")
                if image is not None:
                    stream.add(image, f"{where}.services.{service_id}.image")
            _steps(stream, yamlscan.get(job, "steps"), f"{where}.steps")


def _visit_action(stream: yamlscan.Stream) -> None:
    for doc in stream.documents:
        runs = yamlscan.get(doc, "runs")
        image = yamlscan.get(runs, "image") if runs is not None else None
        if image is not None:
            stream.add(image, "runs.image", prefix=DOCKER)  # `Dockerfile` (a build) has no prefix: left alone
        _steps(stream, yamlscan.get(runs, "steps") if runs is not None else None, "runs.steps")
