"""The seed groups in TensorBoard: <sweep>/aggregate/<group>/, one run per group, with
`<tag>/mean` and `<tag>/std` (sample std over the group's jobs) at each step for loss/train,
loss/val and every metric, and `<tag>/lower`, `<tag>/upper` = mean -+ std for a custom-scalars
layout of margin charts (TensorBoard's Custom Scalars tab: each group's mean with its band).

`tensorboard --logdir outputs` shows them beside the jobs' own runs. The whole folder is written
anew at each summary, next to the old one, and then put in its place.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars

from gradtrace.loggers.events import EventFileWriter, ScalarBlockEncoder
from gradtrace.setup.folders import folder_suffix
from gradtrace.sweeps.groups import Group

FOLDER = "aggregate"
CATEGORY = "seed groups: mean and sample std over seeds"


def aggregate_tags(metrics: Sequence[str]) -> list[str]:
    return ["loss/train", "loss/val", *metrics]


def write_aggregate(sweep_dir: Path, groups: list[Group], metrics: Sequence[str]) -> Path:
    """Write every group's aggregate run under <sweep_dir>/aggregate; that folder."""
    final = sweep_dir / FOLDER
    staging = sweep_dir / f".{FOLDER}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    tags = aggregate_tags(metrics)
    layout = margin_layout(tags)
    for group in groups:
        if not group.completed:
            continue
        writer = EventFileWriter(staging / group_folder(group))
        try:
            writer.write_summary(layout, step=0)
            for tag in tags:
                curve = group.band(tag)
                if len(curve.steps) == 0:
                    continue
                # std is NaN where one job alone logged the step: the band is then the mean.
                spread = np.nan_to_num(curve.std, nan=0.0)
                columns = {"mean": curve.mean, "std": curve.std,
                           "lower": curve.mean - spread, "upper": curve.mean + spread}
                names = [f"{tag}/{name}" for name in columns]
                values = np.column_stack(list(columns.values()))
                wall = np.full(len(curve.steps), time.time())
                writer.write_records(ScalarBlockEncoder(names).encode(curve.steps, wall, values))
        finally:
            writer.close()
    staging.mkdir(exist_ok=True)
    old = sweep_dir / f".{FOLDER}.old.{os.getpid()}"
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def group_folder(group: Group) -> str:
    """The group's run name: what sets it apart, made safe for a folder name ("all" for a sweep
    of seeds alone)."""
    return folder_suffix(",".join(group.differs)).lstrip("_") or "all"


def margin_layout(tags: Sequence[str]) -> Summary:
    """A custom-scalars layout: one margin chart per tag, `<tag>/mean` between `<tag>/lower`
    and `<tag>/upper`, as TensorBoard's custom_scalars plugin reads it (a string tensor under
    its config tag)."""
    charts = [
        layout_pb2.Chart(title=f"{tag}: mean +- std over seeds",
                         margin=layout_pb2.MarginChartContent(series=[
                             layout_pb2.MarginChartContent.Series(
                                 value=f"{tag}/mean", lower=f"{tag}/lower", upper=f"{tag}/upper")]))
        for tag in tags]
    layout = layout_pb2.Layout(category=[layout_pb2.Category(title=CATEGORY, chart=charts)])
    tensor = TensorProto(dtype=7, string_val=[layout.SerializeToString()],  # 7: DT_STRING
                         tensor_shape=TensorShapeProto())
    meta = SummaryMetadata.FromString(custom_scalars.create_summary_metadata().SerializeToString())
    return Summary(value=[Summary.Value(tag=custom_scalars.CONFIG_SUMMARY_TAG, metadata=meta,
                                        tensor=tensor)])
