"""The Docker Engine API server will land here, as a front end over the Client API."""
