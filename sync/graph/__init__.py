"""Microsoft Graph, through msgraph-sdk: client construction and the calendar operations used."""
