<#
.SYNOPSIS
Gives the function app's managed identity calendar access to the staff mailboxes only, with
Exchange Online RBAC for Applications.

.DESCRIPTION
Creates (or updates) three things in Exchange Online, and leaves them alone when they are already
as wanted, so it is safe to run again:

  1. a service principal pointer to the managed identity (New-ServicePrincipal);
  2. a management scope matching the direct members of one mail-enabled security group
     (New-ManagementScope -RecipientRestrictionFilter "MemberOfGroup -eq '<group DN>'");
  3. role assignments "Application Calendars.ReadWrite" and "Application MailboxSettings.Read"
     limited to that scope (New-ManagementRoleAssignment -CustomResourceScope).

Do not also grant Calendars.ReadWrite or MailboxSettings.Read to the identity in Microsoft Entra
ID: Entra grants are tenant-wide and add to these scoped ones (grant-graph-permissions.sh grants
only User.Read.All by default). Add or remove staff by changing the group's members; Exchange
can take up to a couple of hours to apply a change. Nested groups are not followed.

Run it in a session connected with Connect-ExchangeOnline as a member of Organization Management
(or with the Exchange Administrator role).

.PARAMETER AppId
Client id of the managed identity (deployment output FUNCTION_APP_IDENTITY_CLIENT_ID).

.PARAMETER ObjectId
Object id of the managed identity's service principal (FUNCTION_APP_IDENTITY_PRINCIPAL_ID).

.PARAMETER StaffGroup
Name, alias or address of the mail-enabled security group whose direct members are the staff
mailboxes Coconut may sync.

.PARAMETER TestMailbox
Optional staff mailbox to check afterwards with Test-ServicePrincipalAuthorization.

.EXAMPLE
Connect-ExchangeOnline -UserPrincipalName admin@bank.example
./infra/scripts/Set-StaffMailboxScope.ps1 -AppId <client id> -ObjectId <principal id> `
    -StaffGroup coconut-staff@bank.example -TestMailbox advisor@bank.example
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [guid] $AppId,
    [Parameter(Mandatory)] [guid] $ObjectId,
    [Parameter(Mandatory)] [string] $StaffGroup,
    [string] $DisplayName = 'Coconut M365 calendar sync',
    [string] $ScopeName = 'Coconut sync staff mailboxes',
    [string] $TestMailbox
)

$ErrorActionPreference = 'Stop'
$roles = @('Application Calendars.ReadWrite', 'Application MailboxSettings.Read')

if (-not (Get-Command -Name Get-ManagementScope -ErrorAction SilentlyContinue)) {
    throw 'Not connected to Exchange Online: run Connect-ExchangeOnline first.'
}

# 1. Service principal pointer.
$servicePrincipal = Get-ServicePrincipal -Identity $ObjectId.ToString() -ErrorAction SilentlyContinue
if (-not $servicePrincipal) {
    if ($PSCmdlet.ShouldProcess($DisplayName, 'New-ServicePrincipal')) {
        $servicePrincipal = New-ServicePrincipal -AppId $AppId -ObjectId $ObjectId -DisplayName $DisplayName
    }
    Write-Host "Service principal: created"
}
else {
    Write-Host "Service principal: exists"
}

# 2. Management scope: direct members of the staff group.
$group = Get-Group -Identity $StaffGroup
$filter = "MemberOfGroup -eq '$($group.DistinguishedName)'"
$scope = Get-ManagementScope -Identity $ScopeName -ErrorAction SilentlyContinue
if (-not $scope) {
    if ($PSCmdlet.ShouldProcess($ScopeName, 'New-ManagementScope')) {
        New-ManagementScope -Name $ScopeName -RecipientRestrictionFilter $filter | Out-Null
    }
    Write-Host "Management scope '$ScopeName': created"
}
elseif ($scope.RecipientFilter -ne $filter) {
    if ($PSCmdlet.ShouldProcess($ScopeName, 'Set-ManagementScope')) {
        Set-ManagementScope -Identity $ScopeName -RecipientRestrictionFilter $filter
    }
    Write-Host "Management scope '$ScopeName': filter updated"
}
else {
    Write-Host "Management scope '$ScopeName': exists"
}

# 3. Scoped role assignments, named after the app so that reruns find them.
$prefix = $AppId.ToString().Substring(0, 8)
foreach ($role in $roles) {
    $name = "$prefix $role"
    $assignment = Get-ManagementRoleAssignment -Identity $name -ErrorAction SilentlyContinue
    if (-not $assignment) {
        if ($PSCmdlet.ShouldProcess($name, 'New-ManagementRoleAssignment')) {
            New-ManagementRoleAssignment -Name $name -App $AppId.ToString() -Role $role `
                -CustomResourceScope $ScopeName | Out-Null
        }
        Write-Host "${role}: assigned, limited to '$ScopeName'"
    }
    elseif ($assignment.CustomResourceScope -ne $ScopeName) {
        if ($PSCmdlet.ShouldProcess($name, 'Set-ManagementRoleAssignment')) {
            Set-ManagementRoleAssignment -Identity $name -CustomResourceScope $ScopeName
        }
        Write-Host "${role}: scope corrected to '$ScopeName'"
    }
    else {
        Write-Host "${role}: already assigned"
    }
}

if ($TestMailbox) {
    Test-ServicePrincipalAuthorization -Identity $ObjectId.ToString() -Resource $TestMailbox |
        Format-Table RoleName, GrantedPermissions, AllowedResourceScope, InScope
}
