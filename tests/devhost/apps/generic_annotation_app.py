"""An app the real worker refuses at load time: an activity parameter annotated with a builtin generic."""

from __future__ import annotations

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="references")
def resolve(references: list[str]) -> dict:
    return {"count": len(references)}
