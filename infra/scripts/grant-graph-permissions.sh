#!/usr/bin/env bash
# Grants the function app's managed identity its Microsoft Graph application permissions.
#
# Run once per deployment by a tenant administrator (Privileged Role Administrator or Global
# Administrator), signed in with `az login`. Safe to run again: permissions already granted are
# left alone, so it can sit in a pipeline.
#
# By default only User.Read.All (finding a staff member's mailbox by e-mail address) is granted in
# Microsoft Entra ID. Calendars.ReadWrite and MailboxSettings.Read are granted by Exchange Online
# RBAC for Applications, limited to the staff mailboxes (Set-StaffMailboxScope.ps1): a tenant-wide
# grant in Entra ID would add to that scope and open every mailbox. --tenant-wide-mailbox-access
# grants them tenant-wide instead, for test tenants only.
#
# Usage:
#   infra/scripts/grant-graph-permissions.sh --principal-id <FUNCTION_APP_IDENTITY_PRINCIPAL_ID>
#       [--tenant-wide-mailbox-access]
#
# Exit status: 0 done; 2 bad arguments; 3 done, but mailbox permissions are granted tenant-wide
# in Entra ID although scoped access was asked for (remove them, see docs/deployment.md).
set -euo pipefail

readonly GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
readonly GRAPH="https://graph.microsoft.com/v1.0"
readonly DIRECTORY_PERMISSIONS=(User.Read.All)
readonly MAILBOX_PERMISSIONS=(Calendars.ReadWrite MailboxSettings.Read)

usage() {
  sed -n 's/^#   //p' "$0"
}

principal_id=""
tenant_wide=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id)
      principal_id="${2:-}"
      shift 2 || { usage >&2; exit 2; }
      ;;
    --tenant-wide-mailbox-access)
      tenant_wide=true
      shift
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
if [[ ! "$principal_id" =~ ^[0-9a-fA-F-]{36}$ ]]; then
  echo "--principal-id must be the managed identity's object id (a GUID)" >&2
  exit 2
fi

permissions=("${DIRECTORY_PERMISSIONS[@]}")
if $tenant_wide; then
  permissions+=("${MAILBOX_PERMISSIONS[@]}")
fi

graph_sp_id=$(az ad sp show --id "$GRAPH_APP_ID" --query id -o tsv)

# Application (not delegated) permission ids are app roles of the Microsoft Graph service principal.
app_role_id() {
  az ad sp show --id "$GRAPH_APP_ID" \
    --query "appRoles[?value=='$1' && contains(allowedMemberTypes, 'Application')].id | [0]" \
    -o tsv
}

granted=$(az rest --method GET \
  --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
  --query "value[?resourceId=='$graph_sp_id'].appRoleId" -o tsv)

is_granted() {
  grep -qixF -- "$1" <<<"$granted"
}

for permission in "${permissions[@]}"; do
  role_id=$(app_role_id "$permission")
  if [[ -z "$role_id" ]]; then
    echo "Microsoft Graph has no application permission named $permission" >&2
    exit 1
  fi
  if is_granted "$role_id"; then
    echo "$permission: already granted"
    continue
  fi
  az rest --method POST \
    --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp_id\", \"appRoleId\": \"$role_id\"}" \
    --output none
  echo "$permission: granted"
done

if $tenant_wide; then
  echo "Mailbox permissions are tenant-wide: every mailbox in the tenant is reachable."
  exit 0
fi

status=0
for permission in "${MAILBOX_PERMISSIONS[@]}"; do
  role_id=$(app_role_id "$permission")
  if is_granted "$role_id"; then
    echo "WARNING: $permission is granted tenant-wide in Entra ID, so the Exchange scope cannot limit it." >&2
    status=3
  fi
done
if [[ $status -eq 0 ]]; then
  echo "Next: limit mailbox access with infra/scripts/Set-StaffMailboxScope.ps1 (Exchange Online)."
fi
exit $status
