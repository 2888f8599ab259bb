"""Microsoft Graph through msgraph-sdk: the client (`client`), every request's error mapping,
retries and per-mailbox concurrency (`calls`), and the `MailboxCalendar` port on Graph
(`calendar`)."""
