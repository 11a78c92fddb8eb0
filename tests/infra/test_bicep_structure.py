"""Structure of infra/*.bicep, read through pycep-parser's AST (syntax only: no Bicep compiler offline)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from tests.infra.infra_files import (
    INFRA,
    bicep_files,
    module_config,
    one_resource,
    parse_bicep,
    required_parameters,
    resource_body,
    resources_of_type,
    variable,
)

ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Settings the Flex Consumption plan rejects or ignores (functions-app-settings.md, Flex deprecations).
FLEX_DEPRECATED_SETTINGS = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "linuxFxVersion",
)


def _main() -> dict[str, Any]:
    return parse_bicep("main.bicep")


def _function_app_module() -> dict[str, Any]:
    return parse_bicep("modules/function-app.bicep")


def _property_path(value: Any) -> list[str]:
    """`a.b.c` as ['a', 'b', 'c'] from pycep's nested property_accessor operators."""
    if isinstance(value, str):
        return [value]
    operands = value["operator"]["operands"]
    assert value["operator"]["type"] == "property_accessor"
    return [*_property_path(operands["operand_1"]), *_property_path(operands["operand_2"])]


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Any) -> None:
    doc = parse_bicep(str(path.relative_to(INFRA)))
    assert doc["resources"] or doc.get("modules"), f"{path.name} declares nothing"


def test_the_expected_files_exist() -> None:
    names = {str(p.relative_to(INFRA)) for p in bicep_files()}
    assert {
        "main.bicep",
        "modules/function-app.bicep",
        "modules/storage.bicep",
        "modules/rbac.bicep",
        "modules/monitoring.bicep",
        "modules/identity.bicep",
        "modules/graph-app-roles.bicep",
        "modules/observability.bicep",
        "modules/network.bicep",
        "modules/queue-access.bicep",
        "modules/durable-task-scheduler.bicep",
        "modules/auth.bicep",
    } <= names


def test_required_parameters_are_those_without_a_default() -> None:
    declared = parse_bicep("modules/identity.bicep")["parameters"]
    assert required_parameters(declared) == {"name", "location", "tags"}
    declared = parse_bicep("modules/durable-task-scheduler.bicep")["parameters"]
    assert "userPrincipalId" not in required_parameters(declared)  # default ''
    assert "ipAllowlist" not in required_parameters(declared)


def test_modules_exist_and_get_exactly_their_declared_parameters() -> None:
    for path in bicep_files():
        doc = parse_bicep(str(path.relative_to(INFRA)))
        for name, module in doc.get("modules", {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            assert target.is_file(), f"{path.name}: module {name} points at missing {target}"
            declared = parse_bicep(str(target.relative_to(INFRA)))["parameters"]
            passed = set(module_config(doc, name)["params"])
            required = required_parameters(declared)
            assert passed <= set(declared), f"{name}: unknown params {passed - set(declared)}"
            assert required <= passed, f"{name}: missing required params {required - passed}"


def test_main_is_subscription_scoped_and_creates_the_resource_group() -> None:
    main = _main()
    assert main["globals"]["scope"]["value"] == "subscription"
    one_resource(main, "Microsoft.Resources/resourceGroups")
    assert all(module_config(main, m)["scope"] == "rg" for m in main["modules"])


def test_flex_consumption_plan_on_linux() -> None:
    plan = one_resource(_function_app_module(), "Microsoft.Web/serverfarms")
    assert plan["config"]["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["config"]["kind"] == "functionapp"
    assert plan["config"]["properties"]["reserved"] is True


def test_python_function_app_with_identity_based_deployment_storage() -> None:
    site = one_resource(_function_app_module(), "Microsoft.Web/sites")
    config = site["config"]
    assert config["kind"] == "functionapp,linux"
    assert config["identity"]["type"] == "UserAssigned"
    assert config["properties"]["httpsOnly"] is True
    assert "linuxFxVersion" not in json.dumps(config)
    flex = config["properties"]["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "pythonVersion"}
    storage = flex["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    # union(tags, {'azd-service-name': 'api'}): azd finds the app to deploy by this tag (pycep keeps quotes).
    extra_tags = config["tags"]["function"]["parameters"]["arg_2"]
    assert {key.strip("'"): value for key, value in extra_tags.items()} == {"azd-service-name": "api"}


def test_python_version_is_the_one_the_tests_run() -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert _main()["parameters"]["pythonVersion"]["default"] == running
    assert module_config(_main(), "functionApp")["params"]["pythonVersion"] == "pythonVersion"


def test_durable_group_is_always_ready_by_default() -> None:
    scale = one_resource(_function_app_module(), "Microsoft.Web/sites")["config"]["properties"][
        "functionAppConfig"
    ]["scaleAndConcurrency"]
    conditional = scale["alwaysReady"]["operator"]
    assert conditional["type"] == "conditional"
    assert conditional["operands"]["true_value"] == [
        {"name": "durable", "instanceCount": "durableAlwaysReadyInstances"}
    ]
    assert conditional["operands"]["false_value"] == []
    assert _main()["parameters"]["durableAlwaysReadyInstances"]["default"] == 1
    passed = module_config(_main(), "functionApp")["params"]["durableAlwaysReadyInstances"]
    assert passed == "durableAlwaysReadyInstances"


def test_host_storage_and_telemetry_settings_are_identity_based() -> None:
    settings = variable(_function_app_module(), "platformAppSettings")
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        uri = settings[f"AzureWebJobsStorage__{service}ServiceUri"]
        assert uri == f"https://${{storage.name}}.{service}.${{storageSuffix}}"
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "ClientId=${identityClientId};Authorization=AAD"
    )
    assert _property_path(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == [
        "appInsights",
        "properties",
        "ConnectionString",
    ]
    assert "AzureWebJobsStorage" not in settings, "a connection string would need a shared key"
    app_settings = resource_body(one_resource(_function_app_module(), "Microsoft.Web/sites/config"))
    assert app_settings["name"] == "appsettings"
    # The optional Durable Task Scheduler settings come between the platform's and the code's
    # (test_bicep_options.py).
    assert app_settings["properties"]["function"]["parameters"] == {
        "arg_1": "platformAppSettings",
        "arg_2": "durableTaskSchedulerSettings",
        "arg_3": "appSettings",
    }


def test_publishing_credential_policies_carry_the_location_the_resource_provider_requires() -> None:
    # Without `location` the deployment fails with "The parameter location has an invalid value" although
    # the published type has no such property (Azure/bicep-types-az #1526, #1529, #1566, #1571): keep it, and
    # keep the compiler's BCP187 warning about it silenced on exactly that line.
    doc = _function_app_module()
    policies = resources_of_type(doc, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert sorted(p["config"]["name"] for p in policies) == ["ftp", "scm"]
    for policy in policies:
        assert policy["config"]["parent"] == "functionApp"
        assert policy["config"]["location"] == "location"
        assert policy["config"]["properties"] == {"allow": False}
    lines = (INFRA / "modules" / "function-app.bicep").read_text(encoding="utf-8").splitlines()
    location_lines = [i for i, line in enumerate(lines) if line.strip() == "location: location"]
    pragmas = [i for i, line in enumerate(lines) if line.strip() == "#disable-next-line BCP187"]
    assert len(pragmas) == 2
    assert {i + 1 for i in pragmas} <= set(location_lines)


def test_azure_client_id_is_the_managed_identity() -> None:
    app_settings = variable(_main(), "appSettings")
    assert _property_path(app_settings["AZURE_CLIENT_ID"]) == ["identity", "outputs", "clientId"]
    identity = one_resource(
        parse_bicep("modules/identity.bicep"), "Microsoft.ManagedIdentity/userAssignedIdentities"
    )
    assert identity["existing"] is False


def test_no_secrets_and_no_settings_flex_rejects() -> None:
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        assert "AccountKey=" not in text, path.name
        assert "listKeys(" not in text, path.name
        for name in FLEX_DEPRECATED_SETTINGS:
            assert not re.search(rf"^\s*{name}\s*:", text, re.MULTILINE), f"{path.name} sets {name}"


def test_storage_is_entra_only_and_private() -> None:
    doc = parse_bicep("modules/storage.bicep")
    props = one_resource(doc, "Microsoft.Storage/storageAccounts")["config"]["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    container = one_resource(doc, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["config"]["properties"]["publicAccess"] == "None"


def test_provisioning_and_results_queues_are_created() -> None:
    queues = one_resource(
        parse_bicep("modules/storage.bicep"), "Microsoft.Storage/storageAccounts/queueServices/queues"
    )
    assert queues["config"]["loop_type"]["detail"] == {"item_name": "queueName", "array_name": "queueNames"}
    assert resource_body(queues)["name"] == "queueName"
    passed = module_config(_main(), "storage")["params"]["queueNames"]
    assert passed == ["provisioningQueue", "resultsQueue"]
    app_settings = variable(_main(), "appSettings")
    assert app_settings["PROVISIONING_QUEUE"] == "provisioningQueue"
    assert app_settings["RESULTS_QUEUE"] == "resultsQueue"


def test_role_assignments_use_built_in_role_definition_ids() -> None:
    doc = parse_bicep("modules/rbac.bicep")
    assert variable(doc, "roles") == ROLE_IDS
    storage_roles = [_property_path(v)[1] for v in variable(doc, "storageRoleIds")]
    assert storage_roles == [
        "storageBlobDataOwner",
        "storageQueueDataContributor",
        "storageTableDataContributor",
    ]
    assignments = resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
    assert len(assignments) == 3
    by_principal = {
        resource_body(a)["properties"]["principalId"]: a for a in assignments if "loop_type" in a["config"]
    }
    assert set(by_principal) == {"identityPrincipalId", "userPrincipalId"}
    for assignment in assignments:
        role_definition = resource_body(assignment)["properties"]["roleDefinitionId"]["function"]
        assert role_definition["type"] == "subscription_resource_id"
        assert role_definition["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    identity_loop = by_principal["identityPrincipalId"]["config"]["loop_type"]["detail"]
    assert identity_loop["array_name"] == "storageRoleIds"
    # The deploying user gets the same storage data roles, only when a principal is given.
    user_loop = by_principal["userPrincipalId"]["config"]["loop_type"]["detail"]["array_name"]["operator"][
        "operands"
    ]
    assert user_loop["condition"]["function"] == {
        "type": "empty",
        "parameters": {"item_to_test": "userPrincipalId"},
    }
    assert user_loop["true_value"] == []
    assert user_loop["false_value"] == "storageRoleIds"
    (publisher,) = [a for a in assignments if "loop_type" not in a["config"]]
    role = resource_body(publisher)["properties"]["roleDefinitionId"]["function"]["parameters"][
        "resource_name_1"
    ]
    assert _property_path(role) == ["roles", "monitoringMetricsPublisher"]
    assert resource_body(publisher)["scope"] == "appInsights"
    rbac = module_config(_main(), "rbac")["params"]
    assert rbac["userPrincipalId"] == "principalId"
    assert _main()["parameters"]["principalId"]["default"] == ""


def test_app_insights_accepts_entra_auth_only() -> None:
    doc = parse_bicep("modules/monitoring.bicep")
    props = one_resource(doc, "Microsoft.Insights/components")["config"]["properties"]
    assert props["DisableLocalAuth"] is True
    assert _property_path(props["WorkspaceResourceId"]) == ["logAnalytics", "id"]


def test_graph_app_roles_module_is_opt_in_and_wired_to_the_identity() -> None:
    main = _main()
    module = module_config(main, "graphPermissions")
    assert main["modules"]["graphPermissions"]["detail"]["path"] == "modules/graph-app-roles.bicep"
    assert module["condition"] == "grantGraphAppRoles"
    assert main["parameters"]["grantGraphAppRoles"]["default"] is False
    assert _property_path(module["params"]["principalId"]) == ["identity", "outputs", "principalId"]
    assert module["params"]["appRoleNames"] == "graphAppRoles"
    roles = variable(main, "graphAppRoles")["operator"]["operands"]
    assert roles["condition"] == "grantUserAndMemberRoles"
    assert roles["true_value"] == ["Community.ReadWrite.All", "User.Read.All", "GroupMember.ReadWrite.All"]
    assert roles["false_value"] == ["Community.ReadWrite.All"]


def test_graph_module_grants_app_roles_on_the_graph_service_principal() -> None:
    doc = parse_bicep("modules/graph-app-roles.bicep")
    (alias,) = doc["extensions"]
    bicepconfig = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    assert bicepconfig["extensions"][alias].startswith(
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
    )
    graph_sp = one_resource(doc, "Microsoft.Graph/servicePrincipals")
    assert graph_sp["existing"] is True
    assert graph_sp["config"]["appId"] == GRAPH_APP_ID
    grants = one_resource(doc, "Microsoft.Graph/appRoleAssignedTo")
    assert grants["api_version"] == "v1.0"
    assert grants["config"]["loop_type"]["detail"] == {"item_name": "roleName", "array_name": "appRoleNames"}
    body = resource_body(grants)
    assert body["principalId"] == "principalId"
    assert _property_path(body["resourceId"]) == ["msGraphSp", "id"]


def test_outputs_for_azd() -> None:
    outputs = _main()["outputs"]
    for name in (
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_NAME",
        "SERVICE_API_NAME",
        "MANAGED_IDENTITY_CLIENT_ID",
        "MANAGED_IDENTITY_PRINCIPAL_ID",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "GRAPH_APP_ROLES",
        "AZURE_STORAGE_QUEUE_ENDPOINT",
        "DURABLE_TASK_SCHEDULER_ENDPOINT",
        "DURABLE_TASK_SCHEDULER_DASHBOARD_URL",
        "ENTRA_AUTH_ENABLED",
    ):
        assert name in outputs, name
    # azd exports outputs into developer shells, where AZURE_CLIENT_ID would steer azure-identity locally.
    assert "AZURE_CLIENT_ID" not in outputs


# ---- observability (docs/operations.md) --------------------------------------------------------------

OBSERVABILITY_API_VERSIONS = {
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
    "Microsoft.Insights/workbooks": "2023-06-01",
    "Microsoft.Insights/actionGroups": "2023-01-01",
    "Microsoft.Insights/scheduledQueryRules": "2023-12-01",
}


def _observability() -> dict[str, Any]:
    return parse_bicep("modules/observability.bicep")


def test_observability_resources_use_the_documented_types_and_api_versions() -> None:
    doc = _observability()
    declared = {r["type"]: r["api_version"] for r in doc["resources"].values() if not r["existing"]}
    assert declared == OBSERVABILITY_API_VERSIONS
    assert len(resources_of_type(doc, "Microsoft.Insights/diagnosticSettings")) == 2


def test_observability_parameters_and_defaults() -> None:
    main = _main()
    defaults = {
        name: main["parameters"][name]["default"]
        for name in ("deployDiagnosticSettings", "deployWorkbook", "deployAlerts", "alertEmailAddress")
    }
    # Free or cheap on by default; alerts are billed per rule, so they are opt-in.
    assert defaults == {
        "deployDiagnosticSettings": True,
        "deployWorkbook": True,
        "deployAlerts": False,
        "alertEmailAddress": "",
    }
    module = module_config(main, "observability")
    assert main["modules"]["observability"]["detail"]["path"] == "modules/observability.bicep"
    assert "condition" not in module
    params = module["params"]
    for name in defaults:
        assert params[name] == name
    assert _property_path(params["logAnalyticsName"]) == ["monitoring", "outputs", "logAnalyticsName"]
    assert _property_path(params["functionAppName"]) == ["functionApp", "outputs", "name"]
    assert _property_path(params["storageAccountName"]) == ["storage", "outputs", "name"]
    assert params["provisioningQueue"] == "provisioningQueue"
    module_defaults = _observability()["parameters"]
    for name, default in defaults.items():
        assert module_defaults[name]["default"] == default, name


def test_diagnostic_settings_send_the_app_and_the_queue_service_to_the_workspace() -> None:
    doc = _observability()
    settings = {
        r["config"]["config"]["scope"]: r
        for r in resources_of_type(doc, "Microsoft.Insights/diagnosticSettings")
    }
    assert set(settings) == {"functionApp", "queueService"}
    assert doc["resources"]["functionApp"]["existing"] is True
    assert doc["resources"]["queueService"]["type"] == "Microsoft.Storage/storageAccounts/queueServices"
    for setting in settings.values():
        assert setting["config"]["condition"] == "deployDiagnosticSettings"
        body = resource_body(setting)
        assert _property_path(body["properties"]["workspaceId"]) == ["logAnalytics", "id"]
    app_logs = resource_body(settings["functionApp"])["properties"]["logs"]
    assert [entry["category"] for entry in app_logs] == ["FunctionAppLogs"]
    queue_logs = resource_body(settings["queueService"])["properties"]["logs"]
    # No StorageRead: it would log every poll of the host and of Durable's queues.
    assert [entry["category"] for entry in queue_logs] == ["StorageWrite", "StorageDelete"]
    assert doc["resources"]["logAnalytics"]["existing"] is True
    assert doc["resources"]["logAnalytics"]["type"] == "Microsoft.OperationalInsights/workspaces"


def test_workbook_is_on_by_default_and_shows_the_operations_tiles() -> None:
    doc = _observability()
    workbook = one_resource(doc, "Microsoft.Insights/workbooks")
    assert workbook["config"]["condition"] == "deployWorkbook"
    body = resource_body(workbook)
    assert body["kind"] == "shared"
    assert body["name"]["function"]["type"] == "guid"
    props = body["properties"]
    assert props["category"] == "workbook"
    assert _property_path(props["sourceId"]) == ["logAnalytics", "id"]
    assert props["serializedData"]["function"] == {
        "type": "string",
        "parameters": {"value_to_convert": "workbookContent"},
    }
    content = variable(doc, "workbookContent")
    assert content["version"] == "Notebook/1.0"
    tiles = {item["name"]: item["content"]["query"] for item in content["items"] if item["type"] == 3}
    assert set(tiles) == {
        "outcomes",
        "invocations",
        "failures-by-code",
        "status-checks",
        "graph-latency",
        "graph-429",
        "callback-failures",
        "poison-depth",
    }
    assert all(variable(doc, query) for query in tiles.values())


def test_alerts_and_action_group_are_conditional_on_the_parameter() -> None:
    doc = _observability()
    group = one_resource(doc, "Microsoft.Insights/actionGroups")
    assert group["config"]["condition"] == "deployAlerts"
    body = resource_body(group)
    assert body["location"] == "global"
    assert len(body["properties"]["groupShortName"]) <= 12
    receivers = body["properties"]["emailReceivers"]["operator"]["operands"]
    assert receivers["condition"]["function"] == {
        "type": "empty",
        "parameters": {"item_to_test": "alertEmailAddress"},
    }
    assert receivers["true_value"] == []
    assert receivers["false_value"][0]["emailAddress"] == "alertEmailAddress"

    rules = one_resource(doc, "Microsoft.Insights/scheduledQueryRules")
    loop = rules["config"]["loop_type"]["detail"]
    assert loop["item_name"] == "rule"
    operands = loop["array_name"]["operator"]["operands"]
    assert operands["condition"] == "deployAlerts"
    assert operands["true_value"] == "alertDefinitions"
    assert operands["false_value"] == []
    body = resource_body(rules)
    assert body["kind"] == "LogAlert"
    assert body["dependsOn"] == ["actionGroup"]
    props = body["properties"]
    assert [_property_path(scope) for scope in props["scopes"]] == [["logAnalytics", "id"]]
    criterion = props["criteria"]["allOf"][0]
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == (
        "Count",
        "GreaterThan",
        0,
    )
    definitions = {d["name"]: d for d in variable(doc, "alertDefinitions")}
    assert set(definitions) == {"failed-request", "poison-queue", "callback-failed", "graph-429-sustained"}
    assert definitions["graph-429-sustained"]["periods"] == 3


def test_alert_and_workbook_queries_match_what_the_app_logs() -> None:
    doc = _observability()
    # orchestrators/provision.py, orchestrators/notify.py and provisioning/graph/client.py write these lines.
    assert "failed with" in variable(doc, "failedRequestAlertQuery")
    assert "callback not delivered" in variable(doc, "callbackAlertQuery")
    assert " ms (request-id " in variable(doc, "graphExchange")
    assert "Graph finished the creation after" in variable(doc, "statusChecksQuery")
    assert variable(doc, "poisonQueue") == "${provisioningQueue}-poison"
    sources = {
        "orchestrators/provision.py": (
            '"failed with %s: %s"',
            '"Graph finished the creation after %s checks"',
        ),
        "orchestrators/notify.py": ('"callback not delivered: %s"',),
        "provisioning/graph/client.py": (
            '"Graph %s %s -> %s in %d ms (request-id %s, client-request-id %s)"',
        ),
    }
    for path, lines in sources.items():
        text = (INFRA.parent / path).read_text(encoding="utf-8")
        for line in lines:
            assert line in text, f"{path} no longer logs {line}: update infra/modules/observability.bicep"


def test_host_json_traces_durable_work_and_keeps_failures_unsampled() -> None:
    host = json.loads((INFRA.parent / "host.json").read_text(encoding="utf-8"))
    tracing = host["extensions"]["durableTask"]["tracing"]
    assert tracing == {"distributedTracingEnabled": True, "version": "V2"}
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    excluded = set(sampling["excludedTypes"].split(";"))
    # Sampling works per telemetry type, not per severity: traces (warnings included) are excluded whole.
    assert {"Request", "Exception", "Trace"} <= excluded
