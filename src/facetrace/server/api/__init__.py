"""The API's routers, one per area; each route turns HTTP into one service call and back."""
