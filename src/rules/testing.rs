//! Rule unit tests (`waflow test`): placeholder replaced below.
