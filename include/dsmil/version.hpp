#pragma once

#define DSMIL_VERSION "0.1.0"
