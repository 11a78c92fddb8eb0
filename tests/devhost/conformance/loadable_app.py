"""A durable app module for `load_app` tests (a `df.DFApp`, which is not a `func.FunctionApp` subclass)."""

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="value")
def echo(value: str) -> str:
    return value
