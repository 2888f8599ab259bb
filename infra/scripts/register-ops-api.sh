#!/usr/bin/env bash
# Registers the ops API in Microsoft Entra ID, and optionally grants operators its app roles.
#
# Run by a tenant administrator (Cloud Application Administrator or Application Administrator),
# signed in with `az login`, before or after the first deployment. Safe to run again: the
# registration is brought to the state in ops-api/*.json and grants already made are left alone.
#
# It creates or updates:
#   - the app registration (unique name --name): app roles Sync.Read and Sync.Operate, the
#     application id URI api://<client id>, v2 access tokens, one delegated scope that the Azure
#     CLI and Azure PowerShell may use without a consent prompt (python -m sync.ops signs in
#     through them);
#   - its service principal, with "assignment required" on, so only holders of a role can get
#     a token for the API at all;
#   - the role assignments asked for with --grant-read / --grant-operate (a user's, a group's or
#     a managed identity's object id; groups need Microsoft Entra ID P1).
# No client secret or certificate is created: App Service Authentication only validates tokens.
#
# Usage:
#   infra/scripts/register-ops-api.sh [--name coconut-sync-ops-<environment>]
#       [--grant-read <object id>]... [--grant-operate <object id>]...
#
# Prints OPS_API_CLIENT_ID=<client id>; give it to the deployment (azd env set OPS_API_CLIENT_ID,
# or parameter opsApiClientId). Exit status: 0 done; 2 bad arguments.
set -euo pipefail

readonly GRAPH="https://graph.microsoft.com/v1.0"
# App role ids, as in ops-api/application.json.
readonly READ_ROLE_ID="9795aa3f-e050-4ef5-8ca5-3c67e8f78021"
readonly OPERATE_ROLE_ID="4b9f1d03-9739-4834-8627-88117e269288"
readonly GUID='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  sed -n 's/^#   //p' "$0"
}

name="coconut-sync-ops"
grants=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name)
      name="${2:-}"
      shift 2 || { usage >&2; exit 2; }
      ;;
    --grant-read | --grant-operate)
      [[ "${2:-}" =~ $GUID ]] || { echo "$1 takes an object id (a GUID)" >&2; exit 2; }
      role=$([[ "$1" == --grant-read ]] && echo "$READ_ROLE_ID" || echo "$OPERATE_ROLE_ID")
      grants+=("$2 $role")
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "unknown argument: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
done
if [[ ! "$name" =~ ^[A-Za-z0-9._-]{1,100}$ ]]; then
  echo "--name takes letters, digits, '.', '_' and '-'" >&2
  exit 2
fi

application="$GRAPH/applications(uniqueName='$name')"

# Created if missing, updated otherwise (Microsoft Graph upsert by unique name).
az rest --method PATCH --url "$application" \
  --headers "Content-Type=application/json" "Prefer=create-if-missing" \
  --body "@$here/ops-api/application.json" --output none
app_id=$(az rest --method GET --url "$application" --query appId -o tsv)
az rest --method PATCH --url "$application" --headers "Content-Type=application/json" \
  --body "{\"identifierUris\": [\"api://$app_id\"]}" --output none
# Pre-authorising needs the scope to exist already, hence a second update.
az rest --method PATCH --url "$application" --headers "Content-Type=application/json" \
  --body "@$here/ops-api/preauthorized.json" --output none
echo "App registration $name: client id $app_id, audience api://$app_id"

sp_id=$(az ad sp list --filter "appId eq '$app_id'" --query "[0].id" -o tsv)
if [[ -z "$sp_id" ]]; then
  sp_id=$(az ad sp create --id "$app_id" --query id -o tsv)
fi
az ad sp update --id "$sp_id" --set appRoleAssignmentRequired=true --output none
echo "Service principal $sp_id: only callers holding a role get a token"

assigned=$(az rest --method GET \
  --url "$GRAPH/servicePrincipals/$sp_id/appRoleAssignedTo?\$top=999" \
  --query "value[].[principalId, appRoleId]" -o tsv)
for grant in ${grants[@]+"${grants[@]}"}; do
  read -r principal role <<<"$grant"
  label=$([[ "$role" == "$READ_ROLE_ID" ]] && echo Sync.Read || echo Sync.Operate)
  if grep -qixF -- "$principal"$'\t'"$role" <<<"$assigned"; then
    echo "$label for $principal: already granted"
    continue
  fi
  az rest --method POST --url "$GRAPH/servicePrincipals/$sp_id/appRoleAssignedTo" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal\", \"resourceId\": \"$sp_id\", \"appRoleId\": \"$role\"}" \
    --output none
  echo "$label for $principal: granted"
done

echo "OPS_API_CLIENT_ID=$app_id"
echo "Next: azd env set OPS_API_CLIENT_ID $app_id && azd provision" \
  "(or opsApiClientId=$app_id with az deployment group create)."
