"""The optional parts of infra/ (docs/deploy.md): queue senders and readers, network isolation, the Durable
Task Scheduler back end and App Service Authentication with Entra ID. Read through pycep-parser's AST: syntax
and wiring only, as for test_bicep_structure.py (no Bicep compiler offline)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.infra_files import (
    HOST_JSON,
    ROOT,
    function_bindings,
    module_config,
    one_resource,
    parse_bicep,
    resource_body,
    resources_of_type,
    variable,
)

QUEUE_ROLE_IDS = {
    "storageQueueDataMessageSender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "storageQueueDataMessageProcessor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
}
DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"
DTS_SETTINGS_PREFIX = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__"
# The first extension bundle v4 release whose extensions.json lists the Durable Task Scheduler provider,
# Microsoft.Azure.WebJobs.Extensions.DurableTask.AzureManaged (azure-functions-extension-bundles 4.30.0).
FIRST_BUNDLE_WITH_AZURE_MANAGED = (4, 30, 0)

# Every new main.bicep parameter, its default (all off, or empty), and the name azd maps to it (None: arrays,
# which only azd 1.23.4+ can take from an environment variable; docs/deploy.md says how to pass them).
OPTION_PARAMETERS: dict[str, tuple[Any, str | None]] = {
    "requestQueueSenders": ([], None),
    "resultQueueReaders": ([], None),
    "vnetEnabled": (False, "VNET_ENABLED"),
    "useDurableTaskScheduler": (False, "USE_DURABLE_TASK_SCHEDULER"),
    "entraAuthClientId": ("", "ENTRA_AUTH_CLIENT_ID"),
    "entraAuthTenantId": ("", "ENTRA_AUTH_TENANT_ID"),
    "entraAuthAllowedAudiences": ([], None),
    "entraAuthAllowedClientApplications": ([], None),
    "entraAuthAllowedPrincipalIds": ([], None),
    "entraAuthExcludedPaths": (["/api/dashboard"], None),
}


BICEP_TYPES = {bool: "bool", str: "string", list: "array"}


def _main() -> dict[str, Any]:
    return parse_bicep("main.bicep")


def _path(value: Any) -> list[str]:
    """`a.b.c` (or `a[i].b`) as ['a', 'b', 'c'] from pycep's nested accessor operators."""
    if isinstance(value, str):
        return [value]
    operator = value["operator"]
    operands = operator["operands"]
    assert operator["type"] in ("property_accessor", "index_accessor"), operator["type"]
    if operator["type"] == "index_accessor":
        return [*_path(operands["operand_1"]), f"[{operands['operand_2']}]"]
    return [*_path(operands["operand_1"]), *_path(operands["operand_2"])]


def _conditional(value: Any) -> dict[str, Any]:
    assert value["operator"]["type"] == "conditional", value
    operands: dict[str, Any] = value["operator"]["operands"]
    return operands


def _function(value: Any, name: str) -> dict[str, Any]:
    assert value["function"]["type"] == name, value
    parameters: dict[str, Any] = value["function"].get("parameters", {})
    return parameters


def _role_id(assignment: dict[str, Any]) -> Any:
    role = _function(resource_body(assignment)["properties"]["roleDefinitionId"], "subscription_resource_id")
    assert role["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    return role["resource_name_1"]


# ---- all options ----------------------------------------------------------------------------------------


def test_every_option_is_a_main_parameter_with_an_off_default() -> None:
    parameters = _main()["parameters"]
    for name, (default, _) in OPTION_PARAMETERS.items():
        assert name in parameters, name
        assert parameters[name]["default"] == default, name
        assert parameters[name]["type"] == BICEP_TYPES[type(default)], name


def test_scalar_options_are_mapped_for_azd_and_arrays_are_not() -> None:
    document = json.loads((ROOT / "infra" / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    for name, (_, azd_name) in OPTION_PARAMETERS.items():
        if azd_name is None:
            # "[]" from an older azd would reach ARM as a string and fail an array parameter.
            assert name not in document, name
        else:
            assert document[name]["value"].startswith(f"${{{azd_name}="), name


def test_every_option_is_documented_in_the_deploy_guide() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name, (_, azd_name) in OPTION_PARAMETERS.items():
        assert f"`{name}`" in guide, name
        if azd_name:
            assert azd_name in guide, azd_name


# ---- queue senders and readers --------------------------------------------------------------------------


def _queue_access() -> dict[str, Any]:
    return parse_bicep("modules/queue-access.bicep")


def test_queue_access_module_is_deployed_only_with_principals_and_gets_the_two_queues() -> None:
    main = _main()
    assert main["modules"]["queueAccess"]["detail"]["path"] == "modules/queue-access.bicep"
    module = module_config(main, "queueAccess")
    # !(empty(senders) && empty(readers))
    condition = module["condition"]["operator"]
    assert condition["type"] == "not"
    both_empty = condition["operands"]["bool_value"]["operator"]
    assert both_empty["type"] == "and"
    assert {_function(v, "empty")["item_to_test"] for v in both_empty["operands"].values()} == {
        "requestQueueSenders",
        "resultQueueReaders",
    }
    params = module["params"]
    assert _path(params["storageAccountName"]) == ["storage", "outputs", "name"]
    assert params["requestQueueName"] == "provisioningQueue"
    assert params["resultsQueueName"] == "resultsQueue"
    assert params["requestQueueSenders"] == "requestQueueSenders"
    assert params["resultQueueReaders"] == "resultQueueReaders"
    # The same names the app reads (PROVISIONING_QUEUE, RESULTS_QUEUE) and the storage module creates.
    assert variable(main, "appSettings")["PROVISIONING_QUEUE"] == "provisioningQueue"
    assert variable(main, "appSettings")["RESULTS_QUEUE"] == "resultsQueue"


def test_senders_may_only_add_to_the_requests_queue_and_readers_only_process_the_results_queue() -> None:
    doc = _queue_access()
    assert variable(doc, "roles") == QUEUE_ROLE_IDS
    queues = {
        r["config"]["name"]: r
        for r in resources_of_type(doc, "Microsoft.Storage/storageAccounts/queueServices/queues")
    }
    assert set(queues) == {"requestQueueName", "resultsQueueName"}
    assert all(q["existing"] and q["config"]["parent"] == "queueService" for q in queues.values())
    service = one_resource(doc, "Microsoft.Storage/storageAccounts/queueServices")
    assert service["existing"]
    assert service["config"] == {"parent": "storage", "name": "default"}

    assignments = {
        a["config"]["loop_type"]["detail"]["array_name"]: a
        for a in resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
    }
    assert set(assignments) == {"requestQueueSenders", "resultQueueReaders"}
    expected = {
        "requestQueueSenders": ("requestQueue", "storageQueueDataMessageSender"),
        "resultQueueReaders": ("resultsQueue", "storageQueueDataMessageProcessor"),
    }
    for array, (queue, role) in expected.items():
        assignment = assignments[array]
        item = assignment["config"]["loop_type"]["detail"]["item_name"]
        body = resource_body(assignment)
        # Scoped to the one queue, never to the account.
        assert body["scope"] == queue
        assert _role_id(assignment) == {
            "operator": {"type": "property_accessor", "operands": {"operand_1": "roles", "operand_2": role}}
        }
        assert _path(body["properties"]["principalId"]) == [item, "principalId"]
        principal_type = body["properties"]["principalType"]["operator"]
        assert principal_type["type"] == "coalesce"
        assert _path(principal_type["operands"]["operand_1"]) == [item, "principalType"]
        assert principal_type["operands"]["operand_2"] == "ServicePrincipal"
        assignment_name = _function(body["name"], "guid")
        assert _path(assignment_name["base_string"]) == [queue, "id"]
        assert _path(assignment_name["extra_string_1"]) == [item, "principalId"]
    for name in ("requestQueueSenders", "resultQueueReaders"):
        assert doc["parameters"][name]["default"] == []


def test_the_queue_endpoint_is_an_output_for_queue_senders() -> None:
    storage = parse_bicep("modules/storage.bicep")
    assert _path(storage["outputs"]["queueEndpoint"]["value"]) == [
        "storage",
        "properties",
        "primaryEndpoints",
        "queue",
    ]
    assert _path(_main()["outputs"]["AZURE_STORAGE_QUEUE_ENDPOINT"]["value"]) == [
        "storage",
        "outputs",
        "queueEndpoint",
    ]


def test_host_json_keeps_base64_queue_messages_which_the_recipe_encodes() -> None:
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    assert host["extensions"]["queues"]["messageEncoding"] == "base64"
    recipe = (ROOT / "docs" / "power-automate.md").read_text(encoding="utf-8")
    assert "base64(" in recipe
    assert "base64ToString(" in recipe


# ---- network isolation ------------------------------------------------------------------------------------


def _network() -> dict[str, Any]:
    return parse_bicep("modules/network.bicep")


def test_network_module_is_conditional_and_wired_to_storage_and_the_app() -> None:
    main = _main()
    module = module_config(main, "network")
    assert main["modules"]["network"]["detail"]["path"] == "modules/network.bicep"
    assert module["condition"] == "vnetEnabled"
    assert _path(module["params"]["storageAccountName"]) == ["storage", "outputs", "name"]
    assert module_config(main, "storage")["params"]["vnetEnabled"] == "vnetEnabled"
    subnet = _conditional(module_config(main, "functionApp")["params"]["virtualNetworkSubnetId"])
    assert subnet["condition"] == "vnetEnabled"
    assert _path(subnet["true_value"]) == ["network", "outputs", "appSubnetId"]
    assert subnet["false_value"] == ""


def test_vnet_has_a_flex_consumption_app_subnet_and_a_private_endpoint_subnet() -> None:
    doc = _network()
    vnet = one_resource(doc, "Microsoft.Network/virtualNetworks")
    subnets = {variable(doc, s["name"]): s["properties"] for s in vnet["config"]["properties"]["subnets"]}
    assert set(subnets) == {"app", "private-endpoints"}
    assert [d["properties"]["serviceName"] for d in subnets["app"]["delegations"]] == [
        "Microsoft.App/environments"
    ]
    assert "delegations" not in subnets["private-endpoints"]
    assert subnets["private-endpoints"]["privateEndpointNetworkPolicies"] == "Disabled"
    assert doc["outputs"]["appSubnetId"]["value"] == "${vnet.id}/subnets/${appSubnetName}"


def test_storage_services_get_private_endpoints_and_privatelink_zones() -> None:
    doc = _network()
    assert variable(doc, "storageServices") == ["blob", "queue", "table"]
    zones = one_resource(doc, "Microsoft.Network/privateDnsZones")
    assert zones["config"]["loop_type"]["detail"] == {"item_name": "service", "array_name": "storageServices"}
    assert resource_body(zones)["name"] == "privatelink.${service}.${environment().suffixes.storage}"
    assert resource_body(zones)["location"] == "global"

    links = one_resource(doc, "Microsoft.Network/privateDnsZones/virtualNetworkLinks")
    link = resource_body(links)
    assert _path(link["parent"]) == ["privateDnsZones", "[i]"]
    assert link["properties"]["registrationEnabled"] is False
    assert _path(link["properties"]["virtualNetwork"]["id"]) == ["vnet", "id"]

    endpoints = one_resource(doc, "Microsoft.Network/privateEndpoints")
    endpoint = resource_body(endpoints)
    assert endpoints["config"]["loop_type"]["detail"]["array_name"] == "storageServices"
    assert endpoint["properties"]["subnet"]["id"] == "${vnet.id}/subnets/${privateEndpointSubnetName}"
    (connection,) = endpoint["properties"]["privateLinkServiceConnections"]
    assert connection["properties"]["groupIds"] == ["service"]
    assert _path(connection["properties"]["privateLinkServiceId"]) == ["storage", "id"]

    group_loop = one_resource(doc, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    groups = resource_body(group_loop)
    assert _path(groups["parent"]) == ["privateEndpoints", "[i]"]
    (config,) = groups["properties"]["privateDnsZoneConfigs"]
    assert _path(config["properties"]["privateDnsZoneId"]) == ["privateDnsZones", "[i]", "id"]
    # Zone i, link i, endpoint i and group i all belong to storageServices[i].
    for loop in (links, group_loop):
        assert loop["config"]["loop_type"]["detail"] == {
            "item_name": "service",
            "index_name": "i",
            "array_name": "storageServices",
        }


def test_storage_turns_public_access_off_only_with_network_isolation() -> None:
    doc = parse_bicep("modules/storage.bicep")
    assert doc["parameters"]["vnetEnabled"]["default"] is False
    props = one_resource(doc, "Microsoft.Storage/storageAccounts")["config"]["properties"]
    access = _conditional(props["publicNetworkAccess"])
    assert (access["condition"], access["true_value"], access["false_value"]) == (
        "vnetEnabled",
        "Disabled",
        "Enabled",
    )
    acls = _conditional(props["networkAcls"])
    assert acls["condition"] == "vnetEnabled"
    assert acls["true_value"] == {"bypass": "None", "defaultAction": "Deny"}
    assert acls["false_value"] == {"bypass": "AzureServices", "defaultAction": "Allow"}


def test_function_app_integrates_with_the_subnet_only_when_given_one() -> None:
    doc = parse_bicep("modules/function-app.bicep")
    assert doc["parameters"]["virtualNetworkSubnetId"]["default"] == ""
    site = one_resource(doc, "Microsoft.Web/sites")["config"]["properties"]
    subnet = _conditional(site["virtualNetworkSubnetId"])
    assert _function(subnet["condition"], "empty")["item_to_test"] == "virtualNetworkSubnetId"
    assert subnet["true_value"] is None
    assert subnet["false_value"] == "virtualNetworkSubnetId"


# ---- Durable Task Scheduler -----------------------------------------------------------------------------


def _dts() -> dict[str, Any]:
    return parse_bicep("modules/durable-task-scheduler.bicep")


def test_scheduler_and_task_hub_use_the_ga_api_and_the_app_task_hub_name() -> None:
    doc = _dts()
    scheduler = one_resource(doc, "Microsoft.DurableTask/schedulers")
    hub = one_resource(doc, "Microsoft.DurableTask/schedulers/taskHubs")
    assert scheduler["api_version"] == hub["api_version"] == "2025-11-01"
    props = scheduler["config"]["properties"]
    assert props["sku"] == {"name": "Consumption"}
    assert props["ipAllowlist"] == "ipAllowlist"
    # An empty allow list refuses every caller, identity or not.
    assert doc["parameters"]["ipAllowlist"]["default"] == ["0.0.0.0/0"]
    assert hub["config"] == {"parent": "scheduler", "name": "taskHubName"}
    main = _main()
    module = module_config(main, "durableTaskScheduler")
    assert main["modules"]["durableTaskScheduler"]["detail"]["path"] == "modules/durable-task-scheduler.bicep"
    assert module["condition"] == "useDurableTaskScheduler"
    params = module["params"]
    assert _path(params["taskHubName"]) == ["appSettings", "TASKHUB_NAME"]
    assert _path(params["identityPrincipalId"]) == ["identity", "outputs", "principalId"]
    assert params["userPrincipalId"] == "principalId"
    assert params["userPrincipalType"] == "principalType"
    assert doc["outputs"]["endpoint"]["value"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {
                "operand_1": "scheduler",
                "operand_2": {
                    "operator": {
                        "type": "property_accessor",
                        "operands": {"operand_1": "properties", "operand_2": "endpoint"},
                    }
                },
            },
        }
    }
    assert _path(doc["outputs"]["dashboardUrl"]["value"]) == ["taskHub", "properties", "dashboardUrl"]


def test_identity_and_deploying_user_get_durable_task_data_contributor_on_the_scheduler() -> None:
    doc = _dts()
    assert variable(doc, "durableTaskDataContributor") == DURABLE_TASK_DATA_CONTRIBUTOR
    assignments = {
        resource_body(a)["properties"]["principalId"]: a
        for a in resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
    }
    assert set(assignments) == {"identityPrincipalId", "userPrincipalId"}
    for assignment in assignments.values():
        assert resource_body(assignment)["scope"] == "scheduler"
        assert _role_id(assignment) == "durableTaskDataContributor"
    assert (
        resource_body(assignments["identityPrincipalId"])["properties"]["principalType"] == "ServicePrincipal"
    )
    user = assignments["userPrincipalId"]["config"]["condition"]["operator"]
    assert user["type"] == "not"
    assert _function(user["operands"]["bool_value"], "empty")["item_to_test"] == "userPrincipalId"


def test_app_settings_switch_the_durable_storage_provider_to_the_scheduler() -> None:
    doc = parse_bicep("modules/function-app.bicep")
    assert doc["parameters"]["durableTaskSchedulerEndpoint"]["default"] == ""
    settings = _conditional(variable(doc, "durableTaskSchedulerSettings"))
    assert _function(settings["condition"], "empty")["item_to_test"] == "durableTaskSchedulerEndpoint"
    assert settings["true_value"] == {}
    on = settings["false_value"]
    connection_name = variable(doc, "durableTaskSchedulerConnection")
    assert connection_name == "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    assert on == {
        f"{DTS_SETTINGS_PREFIX}type": "azureManaged",
        f"{DTS_SETTINGS_PREFIX}connectionStringName": "durableTaskSchedulerConnection",
        connection_name: (
            "Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}"
        ),
    }
    # The user-assigned identity's client id, as for host storage; no key or secret anywhere.
    assert variable(doc, "platformAppSettings")["AzureWebJobsStorage__clientId"] == "identityClientId"
    endpoint = _conditional(module_config(_main(), "functionApp")["params"]["durableTaskSchedulerEndpoint"])
    assert endpoint["condition"] == "useDurableTaskScheduler"
    assert _path(endpoint["true_value"]) == ["durableTaskScheduler", "outputs", "endpoint"]
    assert endpoint["false_value"] == ""


def test_the_overridden_settings_are_paths_of_host_json() -> None:
    # AzureFunctionsJobHost__a__b overrides host.json's a.b: the path must exist there, with the Azure Storage
    # provider (no type) for local runs and the default deployment.
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    provider = host["extensions"]["durableTask"]["storageProvider"]
    assert "type" not in provider
    assert "connectionStringName" not in provider
    assert host["extensions"]["durableTask"]["hubName"] == "%TASKHUB_NAME%"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _bundle_range_includes(version_range: str, version: tuple[int, int, int]) -> bool:
    """NuGet-style range "[low, high)" as host.json's extensionBundle uses it; `4.*` means any 4.x."""
    match = re.fullmatch(r"([\[(])\s*([\d.*]+)\s*,\s*([\d.*]+)\s*([\])])", version_range)
    assert match, version_range
    opening, low, high, closing = match.groups()
    low_version = _version(low.replace("*", "0").rstrip("."))
    high_version = _version(high)
    above = version >= low_version if opening == "[" else version > low_version
    below = version <= high_version if closing == "]" else version < high_version
    return above and below


def test_bundle_range_reader() -> None:
    assert _bundle_range_includes("[4.*, 5.0.0)", (4, 30, 0))
    assert not _bundle_range_includes("[4.*, 5.0.0)", (5, 0, 0))
    assert not _bundle_range_includes("[4.0.0, 4.29.0]", (4, 30, 0))
    assert _bundle_range_includes("(4.29.0, 4.30.0]", (4, 30, 0))


def test_extension_bundle_range_admits_the_azure_managed_provider() -> None:
    bundle = json.loads(HOST_JSON.read_text(encoding="utf-8"))["extensionBundle"]
    assert bundle["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert _bundle_range_includes(bundle["version"], FIRST_BUNDLE_WITH_AZURE_MANAGED)


def test_scheduler_outputs_for_operators() -> None:
    outputs = _main()["outputs"]
    for name, output in (
        ("DURABLE_TASK_SCHEDULER_ENDPOINT", "endpoint"),
        ("DURABLE_TASK_SCHEDULER_DASHBOARD_URL", "dashboardUrl"),
    ):
        value = _conditional(outputs[name]["value"])
        assert value["condition"] == "useDurableTaskScheduler"
        assert _path(value["true_value"]) == ["durableTaskScheduler", "outputs", output]
        assert value["false_value"] == ""


# ---- App Service Authentication (Entra ID) --------------------------------------------------------------


def _auth() -> dict[str, Any]:
    return parse_bicep("modules/auth.bicep")


def test_entra_auth_module_is_on_only_with_a_client_id() -> None:
    main = _main()
    enabled = variable(main, "entraAuthEnabled")["operator"]
    assert enabled["type"] == "not"
    assert _function(enabled["operands"]["bool_value"], "empty")["item_to_test"] == "entraAuthClientId"
    assert main["modules"]["entraAuth"]["detail"]["path"] == "modules/auth.bicep"
    module = module_config(main, "entraAuth")
    assert module["condition"] == "entraAuthEnabled"
    params = module["params"]
    assert _path(params["functionAppName"]) == ["functionApp", "outputs", "name"]
    assert params["clientId"] == "entraAuthClientId"
    tenant = _conditional(params["tenantId"])
    assert _function(tenant["condition"], "empty")["item_to_test"] == "entraAuthTenantId"
    assert tenant["true_value"]["operator"]["operands"]["operand_1"] == {"function": {"type": "tenant"}}
    assert tenant["false_value"] == "entraAuthTenantId"
    assert params["allowedAudiences"] == "entraAuthAllowedAudiences"
    assert params["allowedClientApplications"] == "entraAuthAllowedClientApplications"
    assert params["allowedPrincipalIds"] == "entraAuthAllowedPrincipalIds"
    assert params["excludedPaths"] == "entraAuthExcludedPaths"
    assert _path(main["outputs"]["ENTRA_AUTH_ENABLED"]["value"]) == ["entraAuthEnabled"]


def test_unauthenticated_requests_get_401_and_tokens_are_checked_against_the_registration() -> None:
    doc = _auth()
    config = one_resource(doc, "Microsoft.Web/sites/config")
    assert config["api_version"] == "2024-04-01"
    body = config["config"]
    assert body["parent"] == "functionApp"
    assert doc["resources"]["functionApp"]["existing"] is True
    assert body["name"] == "authsettingsV2"
    props = body["properties"]
    assert props["platform"] == {"enabled": True}
    assert props["globalValidation"] == {
        "requireAuthentication": True,
        "unauthenticatedClientAction": "Return401",
        "excludedPaths": "excludedPaths",
    }
    assert props["httpSettings"]["requireHttps"] is True
    assert props["login"]["tokenStore"] == {"enabled": False}
    entra = props["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    # Issuer from environment() (no hard-coded cloud URL), v2.0 endpoint of the given tenant; no secret.
    assert entra["registration"] == {
        "clientId": "clientId",
        "openIdIssuer": "${environment().authentication.loginEndpoint}${tenantId}/v2.0",
    }
    validation = entra["validation"]
    assert validation["allowedAudiences"] == "audiences"
    policy = validation["defaultAuthorizationPolicy"]
    assert policy["allowedApplications"] == "clientApplications"
    principals = _conditional(policy["allowedPrincipals"])
    assert _function(principals["condition"], "empty")["item_to_test"] == "allowedPrincipalIds"
    assert principals["true_value"] == {}
    assert principals["false_value"] == {"identities": "allowedPrincipalIds"}


def test_audiences_and_client_applications_default_to_the_registration() -> None:
    doc = _auth()
    audiences = _conditional(variable(doc, "audiences"))
    assert _function(audiences["condition"], "empty")["item_to_test"] == "allowedAudiences"
    assert audiences["true_value"] == ["clientId", "api://${clientId}"]
    assert audiences["false_value"] == "allowedAudiences"
    # The registration itself is always an allowed client (the connector's tokens), the others are added.
    assert _function(variable(doc, "clientApplications"), "union") == {
        "arg_1": ["clientId"],
        "arg_2": "allowedClientApplications",
    }
    for name in ("allowedAudiences", "allowedClientApplications", "allowedPrincipalIds", "excludedPaths"):
        assert doc["parameters"][name]["default"] == []


@pytest.fixture(scope="module")
def anonymous_routes() -> set[str]:
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    prefix = host["extensions"]["http"]["routePrefix"]
    return {
        f"/{prefix}/{binding['route']}"
        for binding in function_bindings()
        if binding.get("type") == "httpTrigger" and str(binding.get("authLevel")).upper() == "ANONYMOUS"
    }


def test_excluded_paths_are_exactly_the_anonymous_routes(anonymous_routes: set[str]) -> None:
    # An anonymous function behind Easy Auth would be unreachable without a token; a keyed one excluded from
    # it would lose the token check. The default list must match the app's anonymous routes.
    assert anonymous_routes, "no anonymous HTTP function found; has the dashboard route moved?"
    assert set(_main()["parameters"]["entraAuthExcludedPaths"]["default"]) == anonymous_routes
